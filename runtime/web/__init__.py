"""The HTTP edge: FastAPI app, problem responses, generated record endpoints."""
