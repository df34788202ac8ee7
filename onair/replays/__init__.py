"""Replays: every show recorded as it airs, talk and full replays cut from the recording, and
each host's podcast feed of them."""
