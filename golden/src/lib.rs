//! Snapshot goldens of the named case corpus (see README.md). The snapshot test arrives with the corpus.
