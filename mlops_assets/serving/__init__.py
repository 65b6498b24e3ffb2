"""The model server: Open Inference Protocol v2 over FastAPI, served by uvicorn."""
