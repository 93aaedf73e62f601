"""Training a fold: its data and loader, phases and optimizer, checkpoints, and pseudo-labels (the recipe it follows
is rfcx.model.recipe)."""
