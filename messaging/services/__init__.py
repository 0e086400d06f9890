"""Messaging services: every write and side effect of conversations and messages.

- `inbound`: what Meta's webhook delivers (messages, statuses) stored durably, once.
- `conversation`: one inbound message read and answered (SPEC §5).
- `outbound`: messages queued, sent through the gate, failed, retried (SPEC §6).
- `voice`: voice notes fetched and transcribed before they are read (SPEC §5).
"""
