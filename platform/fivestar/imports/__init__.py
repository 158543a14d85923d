"""Onboarding a district from an Excel workbook: the template, the reader, validation and the import.

`template.build_template()` writes the workbook people fill in; `service.import_workbook()` reads it,
checks every row, and writes organisations and members set-based in the caller's transaction —
all or nothing: with any error it writes nothing and returns the full list of problems.
"""
