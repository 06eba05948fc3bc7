"""The assistant's domain: understanding a question, composing its answer, bookings, hand-overs.

Rasa custom actions (`actions/`) and the HTTP routes (`server.py`, `web/`) are thin adapters over
this package; nothing here knows about Rasa trackers or HTTP requests.
"""
