"""Task definitions made through the API: their model, their store, and how they reach the session."""
