"""Rasa custom actions, run by the action server (`python -m actions.serve`: rasa_sdk behind a token, on loopback), split by
job: answers.py (the dialogue's steps), booking.py (the form and the citizen's bookings),
handover.py (转人工); common.py holds what they share. Thin adapters over assistant/."""
