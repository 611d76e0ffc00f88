"""Participants' personal data (PIPL): the privacy notice and consent, proving a number by a
code, a participant's access to and erasure of their data, and retention."""
