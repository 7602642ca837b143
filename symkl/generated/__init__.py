"""Generated numeric code (see symkl.codegen). Do not edit by hand."""
