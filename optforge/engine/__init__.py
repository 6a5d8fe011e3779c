"""The engine: builds a model, its data, its optimizer and schedule, and trains one trial."""
