"""The Jiaozuo stock-and-flow model and the code that loads and runs it."""
