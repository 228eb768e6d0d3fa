"""Reading the model: the parameter registry and the indicators computed from results."""
