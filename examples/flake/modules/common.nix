# Every host: its name, the fleet's tags and what the simulated system
# needs (fleet.generation: bump it to redeploy).
{ ... }:
{
  constel.tags = [ "fleet" ];
  fleet.generation = 1;
}
