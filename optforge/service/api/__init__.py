"""The JSON API: routes per resource, their dependencies, and the router that mounts them."""
