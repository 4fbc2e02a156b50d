"""Reading lead files: CSV (UTF-8, UTF-16, GB18030) and XLSX, streamed row by row."""
