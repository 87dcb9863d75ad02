"""Errors raised while reading an export file.

InvalidInputError
 +-- ImportFileError        a record or field in a file is invalid
 +-- FormatNotDetectedError no importer recognises the file's content
"""

from keysteward.errors import InvalidInputError


class ImportFileError(InvalidInputError):
    """A value in an export file that the importer cannot use.

    The message names the file, the line or record, the field, the value
    found and the form that was expected.
    """

    def __init__(
        self,
        file: str,
        where: str,
        field: str,
        expected: str,
        found: object = None,
    ) -> None:
        self.file = file
        self.where = where
        self.field = field
        self.expected = expected
        self.found = found
        shown = "" if found is None else f", found {found!r}"
        super().__init__(
            f"{file}: {where}: invalid field {field!r}{shown}; expected {expected}"
        )


class FormatNotDetectedError(InvalidInputError):
    """The content of a file matches no importer."""
