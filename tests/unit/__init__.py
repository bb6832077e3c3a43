"""Fast tests of pure engine code: no servers, no network."""
