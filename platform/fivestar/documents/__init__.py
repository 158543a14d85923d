"""Printable documents: PDFs with an embedded Chinese font (pdf.py) and the ones drawn from plain data.

What every PDF needs — the font, page sizes, stars, a provenance footer — is here, so notice lists,
posters, honour rolls, plaques, ballot slips and desk cards look alike and all embed the same font.
These modules take plain data and return bytes: they know no feature, so any feature may print with
them (the report jobs of `fivestar.reports`, the rounds' notice lists and ballot slips). Sending the
bytes to a browser is the web layer's `fivestar.web.downloads`.
"""
