"""Forms of the import pages: the upload, and the column mapping built from the file's columns."""

from django import forms

from subscribers.import_pipeline import attribute_key
from subscribers.models import Import, MailingList

IGNORE, EMAIL, NAME, ATTRIBUTE = "ignore", "email", "name", "attribute"
COLUMN_CHOICES = [
    (EMAIL, "Email address"),
    (NAME, "Name"),
    (ATTRIBUTE, "Custom field"),
    (IGNORE, "Do not import"),
]


class ImportUploadForm(forms.Form):
    # Empty files reach the service, which says what an import needs.
    file = forms.FileField(label="CSV file", allow_empty_file=True)
    mode = forms.ChoiceField(label="What to do", choices=Import.Mode.choices, initial=Import.Mode.ADD)
    mailing_list = forms.ModelChoiceField(
        label="List", queryset=MailingList.objects.none(), required=False, empty_label="No list"
    )

    def __init__(self, *args, workspace_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["mailing_list"].queryset = MailingList.objects.filter(workspace_id=workspace_id).order_by("name")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".txt", ".tsv")):
            raise forms.ValidationError("Choose a .csv file (a spreadsheet saved as CSV).")
        return upload


class ImportMappingForm(forms.Form):
    """A choice per column (email, name, custom field or nothing) and each custom field's key."""

    has_header = forms.BooleanField(label="The first row holds column names", required=False)

    def __init__(self, *args, imp: Import, **kwargs):
        super().__init__(*args, **kwargs)
        self.imp = imp
        mapping = imp.mapping or {}
        keys = {column: key for key, column in mapping.get("attributes", [])}
        self.fields["has_header"].initial = imp.has_header
        for index, header in enumerate(imp.columns):
            role = (
                EMAIL
                if index == mapping.get("email")
                else NAME
                if index == mapping.get("name")
                else ATTRIBUTE
                if index in keys
                else IGNORE
            )
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=f"Column {index + 1}: {header or '(no name)'}", choices=COLUMN_CHOICES, initial=role
            )
            self.fields[f"key_{index}"] = forms.CharField(
                label=f"Custom field key for column {index + 1}",
                required=False,
                max_length=63,
                initial=keys.get(index, attribute_key(header, index)),
            )

    def columns(self):
        """(index, header, choice field, key field) for the template, one per column."""
        return [
            (index, header, self[f"column_{index}"], self[f"key_{index}"])
            for index, header in enumerate(self.imp.columns)
        ]

    def clean(self):
        cleaned = super().clean()
        mapping = {"email": None, "name": None, "attributes": []}
        for index in range(len(self.imp.columns)):
            role = cleaned.get(f"column_{index}")
            if role == EMAIL:
                if mapping["email"] is not None:
                    raise forms.ValidationError("Only one column can hold the email addresses.")
                mapping["email"] = index
            elif role == NAME:
                if mapping["name"] is not None:
                    raise forms.ValidationError("Only one column can hold the name.")
                mapping["name"] = index
            elif role == ATTRIBUTE:
                key = (cleaned.get(f"key_{index}") or "").strip().lower()
                mapping["attributes"].append([key or attribute_key(self.imp.columns[index], index), index])
        if mapping["email"] is None:
            raise forms.ValidationError("Choose the column that holds the email addresses.")
        cleaned["mapping"] = mapping
        return cleaned
