"""Printable reports: PDFs (pdf.py: documents with an embedded Chinese font) and their downloads.

Excel exports live with their features; reports that workers write on request (with progress in
the page and downloads kept for a while) are in `jobs/`. What every PDF needs — the font, page
sizes, stars, a provenance footer — is here, so notice lists, posters, honour rolls, plaques and
desk cards look alike and all embed the same font.
"""
