"""Discovery: find credentials in files, mail exports, spreadsheets and git history.

Rules are data (TOML, in gitleaks' layout). Sources turn inputs into
documents, decoders add decoded views of each document, and the engine runs
the rules over every view while keeping a pointer to the original bytes.
"""
