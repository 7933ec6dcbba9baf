"""aigw: the operator's console for OpenAI Assistants traffic through an AI gateway."""

__version__ = "0.1.0"
