"""pix-collect: a collector client for the pix-stream message-collection API.

The client opens several streams for one ISPB, follows each stream's ``Pull-Next`` link and
appends every message it receives to a JSON Lines file, deduplicated by ``endToEndId``.
"""
