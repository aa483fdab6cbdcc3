"""What a run leaves for people: the manifest, the contact sheet, JSON/JUnit reports and
the HTML gallery."""
