"""The API's request and response models (pydantic 2), one module per resource."""
