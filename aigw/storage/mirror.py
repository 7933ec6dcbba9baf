"""RememberingMirror: a Mirror that tells the local store which agents row each assistant has.

The logging layer fills a row's `agent_id` from that local map (one dict lookup), never by
asking the remote store in the path of a call.
"""

from __future__ import annotations

from collections.abc import Callable

from aigw.storage.base import Mirror


class RememberingMirror:
    def __init__(self, inner: Mirror, remember: Callable[[str, str], None]):
        self.inner = inner
        self.remember = remember

    def upsert_agent(
        self, *, openai_assistant_id: str, name: str, instructions: str | None, model: str
    ) -> str:
        agent_id = self.inner.upsert_agent(
            openai_assistant_id=openai_assistant_id,
            name=name,
            instructions=instructions,
            model=model,
        )
        self.remember(openai_assistant_id, agent_id)
        return agent_id

    def find_agent(self, ref: str) -> str | None:
        agent_id = self.inner.find_agent(ref)
        if agent_id is not None and ref.startswith("asst_"):
            self.remember(ref, agent_id)
        return agent_id

    def user_exists(self, user_id: str) -> bool:
        return self.inner.user_exists(user_id)

    def insert_conversation(self, *, agent_id: str, user_id: str, openai_thread_id: str) -> str:
        return self.inner.insert_conversation(
            agent_id=agent_id, user_id=user_id, openai_thread_id=openai_thread_id
        )

    def insert_message(
        self, *, openai_thread_id: str, openai_message_id: str, role: str, content: str
    ) -> None:
        self.inner.insert_message(
            openai_thread_id=openai_thread_id,
            openai_message_id=openai_message_id,
            role=role,
            content=content,
        )
