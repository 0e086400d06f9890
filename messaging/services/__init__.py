"""Messaging services: every write and side effect of the transport (messages, webhooks, sends).

- `inbound`: what Meta's webhook delivers (messages, statuses) stored durably, once.
- `outbound`: messages queued, sent through the gate, failed, retried (SPEC §6).
- `voice`: voice notes fetched and transcribed before they are read (SPEC §5).
- `sweeps`, `ops`: stuck work re-driven, by the sweep or by hand.

Reading and answering an inbound message (SPEC §5) and the hand-off are the recovery's:
`recovery.inbound` and `recovery.handoff`.
"""
