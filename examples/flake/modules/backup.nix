# Feature: a backup target every other host sends to.
{ ... }:
{
  constel.services.restic = 8000;
}
