"""Opens, clicks and delivery events, their rollups, and the reports built on them."""
