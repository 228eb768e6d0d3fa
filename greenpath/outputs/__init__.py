"""Outputs: charts, decks, workbooks and IAMC tables made from results (they never run the model)."""
