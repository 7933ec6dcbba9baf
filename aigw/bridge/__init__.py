"""The Assistants API served by the gateway itself, each run made through a Chat Completions API.

store.py (+ sqlite_store.py, postgres_store.py) keeps the state; model.py calls the model;
legs.py makes one leg of a run; service.py answers the API; http.py is its aiohttp face.
"""
