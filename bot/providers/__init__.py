"""Clients for the video providers behind one `VideoProvider` protocol."""
