"""Templates, campaigns and their lifecycle, the sending pipeline and SMTP relays."""
