"""Audiences: customers chosen by conditions over their tags, traits and accounts."""
