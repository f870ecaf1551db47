/** Sovereign clouds from settings alone: US Government (GCC High). See test/support/sovereign.ts. */
import { describeSovereignGateway } from '../support/sovereign';

describeSovereignGateway('US Government (GCC High)', 'usgov', 'https://outlook.office365.us/.default', {
  name: 'USGovGCCHigh',
  complianceScope: 'https://ps.compliance.protection.office365.us/.default',
});
