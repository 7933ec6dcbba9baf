"""The gateway client: one factory for the OpenAI SDK client and aigw's transport stack."""
