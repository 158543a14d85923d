"""Fivestar: 五星争创 star ratings for district working committees."""
