"""Contest sources: one module per platform, and the registry naming them."""
