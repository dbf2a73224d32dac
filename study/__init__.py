"""Paper studies as resumable step lists: recipes/<study>/ in, tables and board entries out."""
