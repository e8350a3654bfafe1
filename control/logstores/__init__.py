"""Where task log records are kept: the contract (``base``) and its implementations."""
