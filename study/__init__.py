"""Paper studies as resumable step lists: recipes/studies/<study>/ in, tables and board entries out."""
