"""The messages between the parts, as typed Pydantic models defined once: the CRM's and
the ESP's routes declare them, the bridge's clients read and write them. Imports no part.

``states`` sync states and unit kinds; ``units`` the bridge's calls about a leased unit;
``campaign`` the campaign's fields and upsert; ``chunks`` recipient chunks; ``limits``;
``suppressed`` pages; ``heartbeats`` and the integration page.
"""
