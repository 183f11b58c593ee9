"""HTTP API: a FastAPI app over the service layer (`create_app`)."""
