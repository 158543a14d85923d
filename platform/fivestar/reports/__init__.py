"""Reports written on request by workers (`jobs/`: with progress in the page and downloads kept for a
while), and the tables and contents they are made of.

The PDF toolkit and the documents drawn from plain data are `fivestar.documents`; Excel exports live
with their features.
"""
