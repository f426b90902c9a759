"""Thin routes: validate, call one service function, render."""
