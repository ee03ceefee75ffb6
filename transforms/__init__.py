"""Pure cores and thin Beam transforms: parsing, cleaning, dedup, entities, quotes."""
