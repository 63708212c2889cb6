"""The site: the whole Asterisk side rendered from the controller's config and its secrets."""
