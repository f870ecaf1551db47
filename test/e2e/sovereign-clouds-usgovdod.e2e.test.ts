/** Sovereign clouds from settings alone: US Government (DoD), which only EXO_CLOUD can name. See test/support/sovereign.ts. */
import { describeSovereignGateway } from '../support/sovereign';

describeSovereignGateway('US Government (DoD)', 'usgovdod', 'https://webmail.apps.mil/.default', {
  name: 'USGovDoD',
  complianceScope: 'https://ps.compliance.protection.office365.us/.default',
});
