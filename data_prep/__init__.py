"""data_prep: downloads, offline fixtures and conversion to the kit's TFRecord format.

Run as ``python -m data_prep {fixtures,download,speech-commands,folder} ...``; notebooks
call :mod:`data_prep.prepare` to make sure the data they need exists.
"""
