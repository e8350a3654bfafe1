"""What the service keeps: the contracts of its stores (``base``) and their implementations."""
