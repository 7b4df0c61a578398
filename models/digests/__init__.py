"""The two digests of contract section 6, pure: `periods`, `content` (what a digest says and the
ranking), `text` (shared wording), `slack` (Block Kit) and `mail` (the email).

`DigestContent` is everything one digest says, read from the marts and follow-ups by
`assets/digests.py`; the modules here only turn it into text.
"""
