"""An Assistants-API-compatible HTTP server on loopback: stateful, in memory, deterministic.

Like stripe-mock for Stripe, but stateful: point the OpenAI SDK (or aigw) at its URL to
rehearse without a real gateway. What produces a run's reply is a pluggable Responder.
"""

from aigw.sandbox.server import Sandbox, SandboxOptions

__all__ = ["Sandbox", "SandboxOptions"]
